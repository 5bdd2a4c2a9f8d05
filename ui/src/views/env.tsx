import { useEffect, useState } from 'preact/hooks';
import { useApp } from '../ctx';
import type { FunctionEnv } from '../contract';
import { FileLink } from './routes';

/** Each function's `fn.env.json`: plain values as written, secrets masked (the engine never
 * sends their values: `/_fn/env` answers `<hidden>`). */
export function EnvView() {
  const { state, backend } = useApp();
  const [list, setList] = useState<FunctionEnv[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    backend.functionEnv().then(setList, (e) => setError(String(e)));
  }, [state.catalog]);
  if (error) return <p class="bad">{error}</p>;
  if (!list) return <p class="muted">Loading…</p>;
  if (list.length === 0)
    return (
      <p class="muted empty">
        No function has an <code>fn.env.json</code>. Keys written as <code>{'{"value": "…", "is_secret": true}'}</code> reach
        the handler as <code>event.secrets</code> and are masked here and in the logs.
      </p>
    );
  return (
    <div class="env">
      {list.map((f) => (
        <section class="panel" key={`${f.runtime} ${f.name} ${f.version}`} data-testid="env-function" data-name={f.name}>
          <h3>
            <span class={`rt rt-${f.runtime}`}>{f.runtime}</span> {f.name}
            {f.version !== 'default' && <span class="tag">@{f.version}</span>} <FileLink path={f.file} />
          </h3>
          {f.error && <p class="bad">{f.error}</p>}
          <table class="grid">
            <tbody>
              {f.env.map((e) => (
                <tr key={e.key} data-testid="env-row" data-key={e.key} data-secret={String(e.is_secret)}>
                  <td>
                    <code>{e.key}</code>
                  </td>
                  <td data-testid="env-value">{e.is_secret ? <span class="muted">•••••• (secret)</span> : <code>{e.value}</code>}</td>
                  <td>{e.stored && <span class="tag">stored via /_fn/secrets</span>}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </section>
      ))}
    </div>
  );
}
