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

/** A permission check a plugin's page script makes and does not handle (the notification
 * plugin asks `is_permission_granted` at every load): refused or failed, the app just goes
 * without that feature, so it is no crash. */
export function isPermissionCheck(reason: unknown): boolean {
  const text = reason instanceof Error ? reason.message : String(reason);
  // Tauri words it `plugin:notification|is_permission_granted not allowed by ACL` or
  // `notification.is_permission_granted not allowed. …`, depending on its version.
  return /\b[\w-]+[|.](is_permission_granted|check_permissions|permission_state)\b/.test(text);
}

window.addEventListener('error', (e) => showFatal('error', e.error ?? e.message));
window.addEventListener('unhandledrejection', (e) => {
  if (isPermissionCheck(e.reason)) {
    e.preventDefault();
    console.warn('permission check failed; going without:', e.reason);
    return;
  }
  showFatal('unhandled rejection', e.reason);
});
