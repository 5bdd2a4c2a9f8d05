import { useApp } from '../ctx';
import { fmtMs, fmtTime } from '../format';

export function ReloadsView() {
  const { state } = useApp();
  if (state.reloads.length === 0)
    return (
      <p class="muted empty">
        No reload since the dashboard opened. Save a file of the project and the engine rescans it; each rescan shows up
        here.
      </p>
    );
  return (
    <ol class="timeline" data-testid="reload-list">
      {state.reloads.map((r, i) => (
        <li key={`${r.at}-${i}`} class={r.ok ? 'ok' : 'bad'} data-testid="reload-item" data-ok={String(r.ok)}>
          <div>
            <strong>{fmtTime(r.at)}</strong> {r.ok ? 'reloaded' : 'reload failed'} in {fmtMs(r.ms)} · {r.routes} routes
            {r.added.length > 0 && <span class="added"> +{r.added.length}</span>}
            {r.removed.length > 0 && <span class="removed"> −{r.removed.length}</span>}
          </div>
          {r.error && <div class="bad">{r.error}</div>}
          {r.files.length > 0 && (
            <div class="muted small">
              files: {r.files.slice(0, 12).join(', ')}
              {r.files.length > 12 ? ` … (+${r.files.length - 12})` : ''}
            </div>
          )}
          {r.added.map((a) => (
            <div class="added small" key={`+${a}`}>
              + <code>{a}</code>
            </div>
          ))}
          {r.removed.map((a) => (
            <div class="removed small" key={`-${a}`}>
              − <code>{a}</code>
            </div>
          ))}
        </li>
      ))}
    </ol>
  );
}
