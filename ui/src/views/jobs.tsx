import { useEffect, useMemo, useState } from 'preact/hooks';
import { useApp } from '../ctx';
import type { Job, JobPending, JobResult, JobStatus } from '../contract';
import { fmtMs, fmtTime, statusClass } from '../format';

const STATUSES: JobStatus[] = ['queued', 'running', 'done', 'failed', 'canceled'];
/** How often the list is fetched while the tab is open (jobs emit no live events). */
const POLL_MS = 1000;

function isResult(r: JobResult | JobPending): r is JobResult {
  return typeof r.status === 'number';
}

/** One function the catalog serves, as a job target. */
interface Target {
  key: string;
  runtime: string;
  name: string;
  version: string;
  methods: string[];
}

function SubmitForm({ onSubmitted }: { onSubmitted: () => void }) {
  const { state, backend } = useApp();
  const targets = useMemo(() => {
    const out = new Map<string, Target>();
    for (const entries of Object.values(state.catalog?.mapped_routes ?? {}))
      for (const e of entries ?? []) {
        const key = `${e.runtime}|${e.fn_name}|${e.version}`;
        const t = out.get(key) ?? { key, runtime: e.runtime, name: e.fn_name, version: e.version, methods: [] };
        for (const m of e.methods) if (!t.methods.includes(m)) t.methods.push(m);
        out.set(key, t);
      }
    return [...out.values()].sort((a, b) => (a.key < b.key ? -1 : 1));
  }, [state.catalog]);
  const [key, setKey] = useState('');
  const [method, setMethod] = useState('GET');
  const [body, setBody] = useState('');
  const [error, setError] = useState<string | null>(null);
  const target = targets.find((t) => t.key === key) ?? targets[0];
  const submit = async () => {
    if (!target) return;
    setError(null);
    try {
      await backend.submitJob({
        name: target.name,
        runtime: target.runtime,
        version: target.version === 'default' ? undefined : target.version,
        method,
        body: body || undefined,
      });
      onSubmitted();
    } catch (e) {
      setError(String(e));
    }
  };
  return (
    <div class="toolbar" data-testid="job-form">
      <select data-testid="job-function" value={target?.key ?? ''} onChange={(e) => setKey((e.target as HTMLSelectElement).value)}>
        {targets.map((t) => (
          <option key={t.key} value={t.key}>
            {t.runtime} · {t.name}
            {t.version !== 'default' ? `@${t.version}` : ''}
          </option>
        ))}
      </select>
      <select data-testid="job-method" value={method} onChange={(e) => setMethod((e.target as HTMLSelectElement).value)}>
        {(target?.methods.length ? target.methods : ['GET']).map((m) => (
          <option key={m}>{m}</option>
        ))}
      </select>
      <input
        data-testid="job-body"
        placeholder="body (optional)"
        value={body}
        onInput={(e) => setBody((e.target as HTMLInputElement).value)}
      />
      <button data-testid="job-submit" disabled={!target} onClick={submit}>
        Run as a job
      </button>
      {error && (
        <span class="bad" data-testid="job-error">
          {error}
        </span>
      )}
    </div>
  );
}

function ResultPanel({ id }: { id: string }) {
  const { backend } = useApp();
  const [r, setR] = useState<JobResult | JobPending | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    setR(null);
    setError(null);
    backend.jobResult(id).then(setR, (e) => setError(String(e)));
  }, [id]);
  if (error) return <p class="bad" data-testid="job-result">{error}</p>;
  if (!r) return <p class="muted">Loading the result…</p>;
  if (!isResult(r))
    return (
      <p class="muted" data-testid="job-result" data-status="pending">
        {r.error} ({r.status})
      </p>
    );
  return (
    <section class="panel" data-testid="job-result" data-status={String(r.status)}>
      <h3>
        Result of <code>{id}</code>: <span class={`status ${statusClass(r.status)}`}>{r.status}</span>{' '}
        <span class="muted">in {fmtMs(r.latency_ms)}</span>
        {r.truncated && <span class="tag warn">truncated</span>}
      </h3>
      <ul class="small">
        {Object.entries(r.headers).map(([k, v]) => (
          <li key={k}>
            <code>{k}</code>: {v}
          </li>
        ))}
      </ul>
      <pre data-testid="job-result-body">{r.is_base64 ? `(base64) ${r.body_base64 ?? ''}` : r.body ?? ''}</pre>
    </section>
  );
}

export function JobsView() {
  const { backend } = useApp();
  const [jobs, setJobs] = useState<Job[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [open, setOpen] = useState<string | null>(null);
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let gone = false;
    const load = () =>
      backend.jobs().then(
        (j) => !gone && (setJobs(j), setError(null)),
        (e) => !gone && setError(String(e)),
      );
    void load();
    const t = setInterval(load, POLL_MS);
    return () => {
      gone = true;
      clearInterval(t);
    };
  }, [tick]);
  const counts = STATUSES.map((s) => [s, (jobs ?? []).filter((j) => j.status === s).length] as const);
  return (
    <div class="jobs">
      <SubmitForm onSubmitted={() => setTick((n) => n + 1)} />
      <p class="muted" data-testid="job-counts">
        {counts.map(([s, n], i) => (
          <span key={s} data-status={s} data-count={n}>
            {i > 0 && ' · '}
            {s} {n}
          </span>
        ))}
      </p>
      {error && <p class="bad">{error}</p>}
      {jobs && jobs.length === 0 && (
        <p class="muted empty">No jobs yet. Run a function as a job above, or POST to /_fn/jobs.</p>
      )}
      {jobs && jobs.length > 0 && (
        <table class="grid">
          <thead>
            <tr>
              <th>Job</th>
              <th>Function</th>
              <th>Call</th>
              <th>Status</th>
              <th>Attempt</th>
              <th>Result</th>
              <th>Created</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {jobs.map((j) => (
              <tr key={j.id} data-testid="job-row" data-id={j.id} data-status={j.status}>
                <td>
                  <code>{j.id}</code>
                </td>
                <td>
                  <span class={`rt rt-${j.runtime}`}>{j.runtime}</span> {j.name}
                  {j.version && <span class="tag">@{j.version}</span>}
                </td>
                <td>
                  <span class={`method m-${j.method.toLowerCase()}`}>{j.method}</span> <code>{j.route}</code>
                </td>
                <td>
                  <span class={`tag job-${j.status}`} data-testid="job-status">
                    {j.status}
                  </span>
                  {j.last_error && <div class="muted small">{j.last_error}</div>}
                </td>
                <td>
                  {j.attempt}/{j.max_attempts}
                </td>
                <td>
                  {j.result_status != null && (
                    <span class={`status ${statusClass(j.result_status)}`}>{j.result_status}</span>
                  )}
                </td>
                <td class="muted">{fmtTime(j.created_at_ms)}</td>
                <td>
                  {(j.status === 'done' || j.status === 'failed') && (
                    <button class="link" data-testid="job-show-result" onClick={() => setOpen(j.id)}>
                      result
                    </button>
                  )}
                  {j.status === 'queued' && (
                    <button
                      class="link"
                      data-testid="job-cancel"
                      onClick={() => backend.cancelJob(j.id).then(() => setTick((n) => n + 1), (e) => setError(String(e)))}
                    >
                      cancel
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {open && <ResultPanel id={open} />}
    </div>
  );
}
