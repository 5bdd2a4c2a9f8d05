//! The tray icon: the project's aggregate health (tooltip and a disabled menu line), Open, Quit.

use crate::bridge::Aggregate;
use tauri::menu::{Menu, MenuItem};
use tauri::tray::TrayIconBuilder;
use tauri::{AppHandle, Manager, Runtime};

const TRAY_ID: &str = "main";

/// The menu line that shows health; kept to relabel it.
pub struct HealthItem<R: Runtime>(MenuItem<R>);

pub fn text(health: Option<Aggregate>) -> String {
    match health {
        Some(h) => format!("FastFN: {}", h.label()),
        None => "FastFN: no project".to_string(),
    }
}

pub fn build(app: &AppHandle) -> tauri::Result<()> {
    let health = MenuItem::with_id(app, "health", text(None), false, None::<&str>)?;
    let open = MenuItem::with_id(app, "open", "Open", true, None::<&str>)?;
    let quit = MenuItem::with_id(app, "quit", "Quit", true, None::<&str>)?;
    let menu = Menu::with_items(app, &[&health, &open, &quit])?;
    let mut tray = TrayIconBuilder::with_id(TRAY_ID)
        .tooltip(text(None))
        .menu(&menu)
        .on_menu_event(|app, event| match event.id.as_ref() {
            "open" => crate::show_window(app),
            "quit" => app.exit(0),
            _ => {}
        });
    if let Some(icon) = app.default_window_icon() {
        tray = tray.icon(icon.clone());
    }
    tray.build(app)?;
    app.manage(HealthItem(health));
    Ok(())
}

/// Show `health` in the tooltip and the menu line (no-op without a tray).
pub fn show_health<R: Runtime>(app: &AppHandle<R>, health: Aggregate) {
    let label = text(Some(health));
    if let Some(tray) = app.tray_by_id(TRAY_ID) {
        let _ = tray.set_tooltip(Some(&label));
    }
    if let Some(item) = app.try_state::<HealthItem<R>>() {
        let _ = item.0.set_text(&label);
    }
}
