import { useApp } from '../ctx';
import { fmtAgo } from '../format';

/**
 * Per function: whether its handler runs in the strict sandbox (`strict_fs`), and whether it
 * runs on the shared daemon of its runtime or, after it took that daemon down, on a daemon of
 * its own (`crashing` while that daemon keeps ending). Data: `/_fn/health` `functions.states`.
 */
export function IsolationPanel() {
  const { state } = useApp();
  const fns = [...(state.health?.functions.states ?? [])].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  if (fns.length === 0) return null;
  const crashing = fns.filter((f) => f.isolation?.state === 'crashing').length;
  return (
    <section class={`panel ${crashing > 0 ? 'bad' : ''}`} data-testid="isolation-panel">
      <h3>
        Functions: sandbox and isolation{' '}
        {crashing > 0 && <span class="count bad" data-testid="crashing-count">{crashing} crashing</span>}
      </h3>
      <table class="grid">
        <thead>
          <tr>
            <th>Function</th>
            <th>Sandbox</th>
            <th>Daemon</th>
            <th class="num">Restarts</th>
            <th>Last exit</th>
          </tr>
        </thead>
        <tbody>
          {fns.map((f) => {
            const iso = f.isolation;
            return (
              <tr
                key={f.key}
                class={iso?.state === 'crashing' ? 'bad' : undefined}
                data-testid="isolation-row"
                data-key={f.key}
                data-strict={String(f.strict_fs)}
                data-state={iso?.state ?? 'shared'}
              >
                <td>
                  <span class={`rt rt-${f.runtime}`}>{f.runtime}</span> <code>{f.name}</code>
                </td>
                <td title={f.strict_fs ? 'no reads outside its folder, no platform files, no processes' : undefined}>
                  {f.strict_fs ? 'strict' : <span class="tag warn">off</span>}
                </td>
                <td title={iso?.cause}>
                  {iso ? (
                    <>
                      {iso.state === 'crashing' ? <span class="tag bad">crashing</span> : <span class="tag">isolated</span>}{' '}
                      <span class="muted">pid {iso.pid || '–'}</span>
                    </>
                  ) : (
                    <span class="muted">shared</span>
                  )}
                </td>
                <td class="num">{iso ? iso.restarts : ''}</td>
                <td>
                  {iso?.last_exit ? (
                    <>
                      {iso.last_exit} <span class="muted">{fmtAgo(iso.last_exit_at ?? undefined)}</span>
                    </>
                  ) : (
                    ''
                  )}
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </section>
  );
}
