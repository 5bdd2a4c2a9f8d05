// Imported first by main.tsx, so it runs before any other module (uPlot builds an
// `Intl.NumberFormat(navigator.language)` when it loads).
//
// WebKitGTK reports the POSIX locale as `navigator.language` ("C" when LANG is C or unset, as
// under Xvfb or a service manager). That is not a BCP 47 tag and every `Intl` constructor
// throws a RangeError on it: fall back to en-US.
function validTag(tag: string | undefined): boolean {
  try {
    new Intl.NumberFormat(tag);
    return true;
  } catch {
    return false;
  }
}
if (!validTag(navigator.language)) {
  try {
    Object.defineProperty(navigator, 'language', { value: 'en-US', configurable: true });
    Object.defineProperty(navigator, 'languages', { value: ['en-US'], configurable: true });
  } catch {
    // Read-only on this engine: the formatters below pass an explicit locale anyway.
  }
}

/** A crash must be visible (and readable by the GUI test), never a blank window. */
export function showFatal(what: string, err: unknown) {
  const box = document.createElement('pre');
  box.dataset.testid = 'fatal-error';
  box.className = 'fatal';
  box.textContent = `${what}: ${err instanceof Error ? `${err.message}\n${err.stack ?? ''}` : String(err)}`;
  document.body.prepend(box);
}
window.addEventListener('error', (e) => showFatal('error', e.error ?? e.message));
window.addEventListener('unhandledrejection', (e) => showFatal('unhandled rejection', e.reason));
