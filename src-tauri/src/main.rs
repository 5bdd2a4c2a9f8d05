//! FastFN desktop: the engine in-process, the dashboard (`ui/`) in a window, a tray icon.
//!
//! A thin shell: the engine does the work; this crate opens projects, forwards events and
//! answers the dashboard's commands (`docs/dashboard.md`).

// No console window on Windows release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

mod bridge;
mod commands;
mod project;
mod send;
mod tray;

use fastfn::Engine;
use project::{Open, ProjectInfo, Recents, UiError};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use tauri::async_runtime::JoinHandle;
use tauri::{AppHandle, Emitter, Manager, RunEvent, WindowEvent};

/// The app's state: the open project and the task forwarding its events.
pub struct AppState {
    /// Held for the whole of a switch, so two opens never interleave.
    current: tokio::sync::Mutex<Option<Open>>,
    bridge: Mutex<Option<JoinHandle<()>>>,
    recents: Recents,
}

impl AppState {
    async fn engine(&self) -> Option<Engine> {
        self.current.lock().await.as_ref().and_then(|o| o.engine.clone())
    }

    /// Stop the current engine (if any) and serve `path` instead.
    async fn open(&self, app: &AppHandle, path: PathBuf) -> Result<ProjectInfo, UiError> {
        let path = path
            .canonicalize()
            .map_err(|e| UiError::new("config.missing_dir", format!("{}: {e}", path.display())))
            .and_then(|p| {
                if p.is_dir() {
                    Ok(p)
                } else {
                    Err(UiError::new(
                        "config.missing_dir",
                        format!("{} is not a folder", p.display()),
                    ))
                }
            });
        let path = match path {
            Ok(p) => p,
            Err(e) => {
                let _ = app.emit("engine-error", &e);
                return Err(e);
            }
        };
        let mut current = self.current.lock().await;
        self.stop_locked(&mut current).await;
        let open = match project::start(&path).await {
            Ok(engine) => {
                let task = tauri::async_runtime::spawn(bridge::forward(app.clone(), engine.clone()));
                *self.bridge.lock().unwrap_or_else(|p| p.into_inner()) = Some(task);
                Open {
                    path: path.clone(),
                    engine: Some(engine),
                    error: None,
                }
            }
            Err(e) => {
                tracing::warn!("cannot serve {}: {e}", path.display());
                tray::show_health(app, bridge::Aggregate::Down);
                Open {
                    path: path.clone(),
                    engine: None,
                    error: Some(UiError::from(&e)),
                }
            }
        };
        let info = open.info();
        if let Some(url) = &info.url {
            print_serving(&info.path, url);
        }
        *current = Some(open);
        drop(current);
        if let Err(e) = self.recents.push(&path) {
            tracing::warn!("cannot save the recent projects: {e}");
        }
        if let Some(w) = app.get_webview_window("main") {
            let _ = w.set_title(&format!("FastFN — {}", path.display()));
        }
        let _ = app.emit("project-changed", &info);
        match &info.error {
            Some(e) => {
                let _ = app.emit("engine-error", e);
                Err(e.clone())
            }
            None => Ok(info),
        }
    }

    async fn stop_locked(&self, current: &mut Option<Open>) {
        if let Some(task) = self.bridge.lock().unwrap_or_else(|p| p.into_inner()).take() {
            task.abort();
        }
        if let Some(engine) = current.take().and_then(|o| o.engine) {
            engine.stop().await;
        }
    }

    /// Stop the engine and its daemons (app exit).
    async fn shutdown(&self) {
        let mut current = self.current.lock().await;
        self.stop_locked(&mut current).await;
    }
}

/// One line on stdout per project served, for whoever runs the app from a terminal (and
/// `scripts/app` under a virtual display, where the window cannot be seen).
fn print_serving(path: &str, url: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    // No console (a Windows GUI build, a closed stdout): nothing to tell.
    let _ = writeln!(out, "FastFN: serving {path} at {url}/").and_then(|_| out.flush());
}

pub fn show_window(app: &AppHandle) {
    if let Some(w) = app.get_webview_window("main") {
        let _ = w.show();
        let _ = w.unminimize();
        let _ = w.set_focus();
    }
}

/// The project named on the command line: the first argument that is not a flag.
fn project_arg(args: impl Iterator<Item = String>, cwd: &Path) -> Option<PathBuf> {
    args.skip(1).find(|a| !a.starts_with('-')).map(|a| cwd.join(a))
}

fn open_in_background(app: &AppHandle, path: PathBuf) {
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        let _ = app.state::<AppState>().open(&app, path).await;
    });
}

fn main() {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .event_format(fastfn::inspect::logs::Tagged::text(tracing_subscriber::fmt::format()))
        .finish()
        // Lines written while a request is served are kept with its record (Requests view).
        .with(fastfn::inspect::logs::Capture)
        .init();
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let initial = project_arg(std::env::args(), &cwd);

    let app = tauri::Builder::default()
        .plugin(tauri_plugin_window_state::Builder::default().build())
        .plugin(tauri_plugin_dialog::init())
        .plugin(tauri_plugin_notification::init())
        .plugin(tauri_plugin_opener::init())
        .invoke_handler(tauri::generate_handler![
            commands::health,
            commands::catalog,
            commands::resolve,
            commands::logs,
            commands::send_request,
            commands::kill_daemon,
            commands::schedules,
            commands::run_schedule,
            commands::open_project,
            commands::pick_project,
            commands::recent_projects,
            commands::current_project,
            commands::open_file,
            commands::export_k8s,
        ])
        .setup(move |app| {
            let config_dir = app.path().app_config_dir()?;
            app.manage(AppState {
                current: tokio::sync::Mutex::new(None),
                bridge: Mutex::new(None),
                recents: Recents::new(&config_dir),
            });
            // A desktop without a tray (or a headless session) still gets the window.
            if let Err(e) = tray::build(app.handle()) {
                tracing::warn!("no tray icon: {e}");
            }
            let handle = app.handle().clone();
            tauri::async_runtime::spawn(async move {
                stop_on_signal().await;
                handle.exit(0);
            });
            if let Some(path) = initial.clone() {
                open_in_background(app.handle(), path);
            }
            Ok(())
        })
        .on_window_event(|window, event| {
            if let WindowEvent::DragDrop(tauri::DragDropEvent::Drop { paths, .. }) = event {
                if let Some(dir) = paths.iter().find(|p| p.is_dir()) {
                    open_in_background(window.app_handle(), dir.clone());
                }
            }
        })
        .build(tauri::generate_context!())
        .unwrap_or_else(|e| {
            eprintln!("fastfn-desktop: cannot start: {e}");
            std::process::exit(1);
        });

    app.run(|app, event| {
        if let RunEvent::Exit = event {
            // Daemons also exit when their stdin closes, but stop them properly when we can.
            let state = app.state::<AppState>();
            tauri::async_runtime::block_on(state.shutdown());
        }
    });
}

async fn stop_on_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_argument_skips_flags() {
        let args = ["app", "--automation", "fixtures/demo"].map(String::from).into_iter();
        assert_eq!(
            project_arg(args, Path::new("/w")),
            Some(PathBuf::from("/w/fixtures/demo"))
        );
        let args = ["app", "/abs"].map(String::from).into_iter();
        assert_eq!(project_arg(args, Path::new("/w")), Some(PathBuf::from("/abs")));
        assert_eq!(
            project_arg(["app"].map(String::from).into_iter(), Path::new("/w")),
            None
        );
    }
}
