// Schedules and keep-warm (`/_fn/schedules`, the app's `schedules`): each schedule's spec,
// zone, next and last run, last status and error, pending retry, and "Run now"; then each
// keep-warm function's warm state and last ping. Polled once a second while the tab is open
// (the engine sends no event per scheduler state change; its calls show in Requests, marked).
import { useEffect, useState } from 'preact/hooks';
import { useApp } from '../ctx';
import type { RunNowResult, ScheduleEntry, SchedulesSnapshot } from '../contract';
import { fmtAgo, statusClass } from '../format';

/** Local date and time of epoch seconds, with "in 3 s" for the near future. */
function fmtWhen(epochSeconds: number | undefined): string {
  if (epochSeconds == null) return '–';
  const d = new Date(epochSeconds * 1000);
  const delta = epochSeconds - Date.now() / 1000;
  const text = d.toLocaleString();
  if (delta > 0 && delta < 3600) return `${text} (in ${delta < 60 ? `${delta.toFixed(0)} s` : `${(delta / 60).toFixed(0)} min`})`;
  return text;
}

function spec(s: ScheduleEntry['schedule']): string {
  if (s.every_seconds != null) return `every ${s.every_seconds} s`;
  return s.cron ? `cron ${s.cron}` : '–';
}

function RunNow({ entry, onDone }: { entry: ScheduleEntry; onDone: () => void }) {
  const { backend } = useApp();
  const [busy, setBusy] = useState(false);
  const [result, setResult] = useState<RunNowResult | null>(null);
  const [error, setError] = useState<string | null>(null);
  const run = async () => {
    setBusy(true);
    setError(null);
    try {
      setResult(await backend.runSchedule(entry.key));
    } catch (e) {
      setError(String(e));
    } finally {
      setBusy(false);
      onDone();
    }
  };
  return (
    <span class="run-now">
      <button data-testid="schedule-run" disabled={busy || entry.running} onClick={run}>
        {busy || entry.running ? 'Running…' : 'Run now'}
      </button>
      {result && (
        <span data-testid="schedule-run-result" data-status={result.status} class={`status ${statusClass(result.status)}`}>
          {result.status}
        </span>
      )}
      {error && <span class="bad">{error}</span>}
    </span>
  );
}

export function SchedulesView() {
  const { backend } = useApp();
  const [snap, setSnap] = useState<SchedulesSnapshot | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let gone = false;
    backend
      .schedules()
      .then((s) => {
        if (!gone) {
          setSnap(s);
          setError(null);
        }
      })
      .catch((e) => !gone && setError(String(e)));
    const t = setTimeout(() => setTick((n) => n + 1), 1000);
    return () => {
      gone = true;
      clearTimeout(t);
    };
  }, [backend, tick]);
  const refresh = () => setTick((n) => n + 1);
  if (!snap) return <div class="muted panel">{error ?? 'Loading schedules…'}</div>;
  return (
    <div class="schedules">
      {!snap.enabled && (
        <div class="panel bad" data-testid="scheduler-off">
          The scheduler is off (<code>FN_SCHEDULER_ENABLED=0</code>): nothing below runs by itself.
        </div>
      )}
      {error && <div class="bad">{error}</div>}
      <section class="panel">
        <h3>Schedules</h3>
        <table class="grid">
          <thead>
            <tr>
              <th>Function</th>
              <th>Schedule</th>
              <th>Zone</th>
              <th>Next</th>
              <th>Last</th>
              <th class="num">Last status</th>
              <th>Error</th>
              <th>Retry due</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {snap.schedules.map((s) => (
              <tr key={s.key} data-testid="schedule-row" data-key={s.key}>
                <td>
                  <code>{s.key}</code> <span class="muted">{s.route}</span>
                </td>
                <td data-testid="schedule-spec">
                  {spec(s.schedule)} <span class="muted">{s.schedule.method}</span>
                  {s.schedule.retry.enabled && <span class="tag">retry ×{s.schedule.retry.max_attempts}</span>}
                </td>
                <td>{s.schedule.timezone ?? <span class="muted">local</span>}</td>
                <td data-testid="schedule-next">{fmtWhen(s.state.next)}</td>
                <td data-testid="schedule-last" title={fmtWhen(s.state.last)}>
                  {fmtAgo(s.state.last)}
                </td>
                <td class="num" data-testid="schedule-status">
                  {s.state.last_status != null ? (
                    <span class={`status ${statusClass(s.state.last_status)}`}>{s.state.last_status}</span>
                  ) : (
                    '–'
                  )}
                </td>
                <td class={s.state.last_error ? 'bad' : 'muted'} data-testid="schedule-error">
                  {s.state.last_error || '–'}
                </td>
                <td data-testid="schedule-retry">
                  {s.state.retry_due != null ? `${fmtWhen(s.state.retry_due)} (attempt ${s.state.retry_attempt ?? 2})` : '–'}
                </td>
                <td>
                  <RunNow entry={s} onDone={refresh} />
                </td>
              </tr>
            ))}
            {snap.schedules.length === 0 && (
              <tr>
                <td colSpan={9} class="muted empty">
                  No schedules. Add <code>"schedule": {'{'}"enabled": true, "every_seconds": 60{'}'}</code> to a
                  function's <code>fn.config.json</code>.
                </td>
              </tr>
            )}
          </tbody>
        </table>
      </section>
      <section class="panel">
        <h3>Keep warm</h3>
        <table class="grid">
          <thead>
            <tr>
              <th>Function</th>
              <th>State</th>
              <th>Ping every</th>
              <th>Idle TTL</th>
              <th>Last ping</th>
              <th class="num">Status</th>
              <th>Next ping</th>
            </tr>
          </thead>
          <tbody>
            {snap.keep_warm.map((k) => (
              <tr key={k.key} data-testid="keep-warm-row" data-key={k.key}>
                <td>
                  <code>{k.key}</code>
                </td>
                <td>
                  <span class={`tag ${k.state.warm_state === 'warm' ? '' : 'warn'}`} data-testid="keep-warm-state">
                    {k.state.warm_state}
                  </span>
                </td>
                <td>{k.keep_warm.ping_every_seconds} s</td>
                <td>{k.keep_warm.idle_ttl_seconds} s</td>
                <td>{fmtAgo(k.state.last)}</td>
                <td class="num">
                  {k.state.last_status != null ? (
                    <span class={`status ${statusClass(k.state.last_status)}`}>{k.state.last_status}</span>
                  ) : (
                    '–'
                  )}
                </td>
                <td>{fmtWhen(k.state.next)}</td>
              </tr>
            ))}
            {snap.keep_warm.length === 0 && (
              <tr>
                <td colSpan={7} class="muted empty">
                  No function has <code>keep_warm</code>.
                </td>
              </tr>
            )}
          </tbody>
        </table>
      </section>
    </div>
  );
}
