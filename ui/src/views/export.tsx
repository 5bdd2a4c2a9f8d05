import { useState } from 'preact/hooks';
import { useApp } from '../ctx';
import type { K8sExport } from '../bindings/K8sExport';

// "Export for Kubernetes": the served project → a build context (Containerfile, manifests,
// kustomization) in a folder of the user's choice, as `fastfn export k8s` writes it.
export function ExportView() {
  const { state, backend } = useApp();
  const base = state.project?.path?.replace(/\/+$/, '') ?? '';
  const [out, setOut] = useState(base ? `${base}-k8s` : '');
  const [name, setName] = useState('');
  const [image, setImage] = useState('');
  const [force, setForce] = useState(false);
  const [busy, setBusy] = useState(false);
  const [done, setDone] = useState<K8sExport | null>(null);
  const [error, setError] = useState<string | null>(null);

  const run = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    setDone(null);
    try {
      setDone(await backend.exportK8s({ out: out.trim(), name: name.trim() || undefined, image: image.trim() || undefined, force }));
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <div class="export">
      <p class="muted">
        Writes a Containerfile (Debian, the interpreters, <code>fastfn</code>, this project and its installs) and
        Kubernetes manifests: a Deployment, a Service, an autoscaler, a ConfigMap, a Secret template (names only) and
        one CronJob per schedule. Secret values never leave this machine.
      </p>
      <form onSubmit={run} data-testid="export-form" style="display: grid; gap: 6px; max-width: 48rem; margin-bottom: 12px">
        <label>
          Output folder (absolute){' '}
          <input data-testid="export-out" value={out} onInput={(e) => setOut((e.target as HTMLInputElement).value)} size={60} />
        </label>
        <label>
          App name <input data-testid="export-name" value={name} placeholder="the project folder's name" onInput={(e) => setName((e.target as HTMLInputElement).value)} />
        </label>
        <label>
          Image <input data-testid="export-image" value={image} placeholder="<name>:latest" onInput={(e) => setImage((e.target as HTMLInputElement).value)} />
        </label>
        <label>
          <input type="checkbox" checked={force} onChange={(e) => setForce((e.target as HTMLInputElement).checked)} /> replace an
          earlier export
        </label>
        <button type="submit" disabled={busy || out.trim() === ''} data-testid="export-run">
          {busy ? 'Exporting…' : 'Export for Kubernetes'}
        </button>
      </form>
      {error && (
        <p class="bad" data-testid="export-error">
          {error}
        </p>
      )}
      {done && (
        <div data-testid="export-done">
          <p>
            Exported <strong>{done.name}</strong> into <code>{done.out}</code>. Next:{' '}
            <code>
              podman build -t {done.image} {done.out} && kubectl apply -k {done.out}
            </code>
          </p>
          <ul class="small">
            {done.files.map((f) => (
              <li key={f}>
                <code>{f}</code>
              </li>
            ))}
          </ul>
          {done.warnings.length > 0 && (
            <>
              <p>Warnings (also in the export's README):</p>
              <ul class="bad small" data-testid="export-warnings">
                {done.warnings.map((w) => (
                  <li key={w}>{w}</li>
                ))}
              </ul>
            </>
          )}
        </div>
      )}
    </div>
  );
}
