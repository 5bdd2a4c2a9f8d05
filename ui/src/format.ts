export function fmtBytes(n: number | undefined): string {
  if (n == null) return '–';
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(0)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

export function fmtMs(ms: number): string {
  if (ms < 1) return `${(ms * 1000).toFixed(0)} µs`;
  if (ms < 100) return `${ms.toFixed(1)} ms`;
  if (ms < 10_000) return `${ms.toFixed(0)} ms`;
  return `${(ms / 1000).toFixed(1)} s`;
}

/** Time of day from epoch milliseconds. */
export function fmtTime(ms: number): string {
  const d = new Date(ms);
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

/** "3 s ago" from epoch seconds. */
export function fmtAgo(epochSeconds: number | undefined): string {
  if (!epochSeconds) return '–';
  const s = Math.max(0, Date.now() / 1000 - epochSeconds);
  if (s < 1) return 'just now';
  if (s < 60) return `${s.toFixed(0)} s ago`;
  if (s < 3600) return `${(s / 60).toFixed(0)} min ago`;
  return `${(s / 3600).toFixed(1)} h ago`;
}

export function statusClass(status: number): string {
  if (status >= 500) return 's5';
  if (status >= 400) return 's4';
  if (status >= 300) return 's3';
  return 's2';
}

/** What to install for a missing runtime. */
export const INSTALL_HINT: Record<string, string> = {
  python: 'Python 3 (`python3` on PATH), e.g. `apt install python3` or python.org',
  node: 'Node.js 18+ (`node` on PATH), e.g. `apt install nodejs` or nodejs.org',
  php: 'PHP 8 CLI (`php` on PATH), e.g. `apt install php-cli`',
  lua: 'Lua runs inside the engine: needs an engine built with Lua support',
  rust: 'Rust toolchain (`cargo` on PATH), e.g. rustup',
  go: 'Go toolchain (`go` on PATH)',
};
