//! The IPC commands of `docs/dashboard.md` (desktop column). Each answers the same JSON as its
//! `/_fn/*` twin (the engine's own answer, or a typed struct of its types); failures are
//! `{code, message}`.

use crate::project::{self, ProjectInfo, UiError};
use crate::send::{self, Reply};
use crate::AppState;
use fastfn::logs::{LogFilter, LogLine};
use fastfn::runtime::RuntimeKind;
use fastfn::Engine;
use serde::Serialize;
use serde_json::Value;
use std::path::PathBuf;
use tauri::{AppHandle, State};
use tauri_plugin_dialog::DialogExt;
use tauri_plugin_opener::OpenerExt;

type Result<T> = std::result::Result<T, UiError>;

async fn engine(state: &State<'_, AppState>) -> Result<Engine> {
    state
        .engine()
        .await
        .ok_or_else(|| UiError::new("project.not_serving", "no project is being served"))
}

#[tauri::command]
pub async fn health(state: State<'_, AppState>) -> Result<Value> {
    Ok(engine(&state).await?.health())
}

#[tauri::command]
pub async fn catalog(state: State<'_, AppState>) -> Result<Value> {
    Ok(engine(&state).await?.catalog())
}

#[tauri::command]
pub async fn resolve(state: State<'_, AppState>, method: Option<String>, url: String) -> Result<Value> {
    Ok(engine(&state)
        .await?
        .resolve(method.as_deref().unwrap_or("GET"), &url)
        .await)
}

/// The runtime log's structured lines: what `GET /_fn/logs?file=runtime&format=json` answers
/// as `entries` (`RuntimeLogs` in `ui/src/contract.ts`).
#[derive(Debug, Serialize)]
pub struct RuntimeLogs {
    pub entries: Vec<LogLine>,
}

/// `{runtime?, fn?, stream?, lines?}` → `{entries: LogLine[]}` (`fn` is a Rust keyword, so the
/// arguments are read from the raw payload).
#[tauri::command]
pub async fn logs(state: State<'_, AppState>, request: tauri::ipc::Request<'_>) -> Result<RuntimeLogs> {
    let args = match request.body() {
        tauri::ipc::InvokeBody::Json(v) => v.clone(),
        _ => Value::Null,
    };
    let text = |k: &str| {
        args.get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let lines = args
        .get("lines")
        .and_then(|v| v.as_u64().or_else(|| v.as_str().and_then(|s| s.parse().ok())))
        .unwrap_or(200)
        .min(2000) as usize;
    let filter = LogFilter {
        runtime: text("runtime").and_then(|r| RuntimeKind::parse(&r)),
        function: text("fn"),
        stream: text("stream").filter(|s| s != "all"),
        lines,
    };
    Ok(RuntimeLogs {
        entries: engine(&state).await?.logs().tail(&filter),
    })
}

#[tauri::command]
pub async fn send_request(
    state: State<'_, AppState>,
    method: Option<String>,
    path: String,
    headers: Option<Value>,
    body: Option<String>,
) -> Result<Reply> {
    let headers = send::parse_headers(&headers.unwrap_or(Value::Null))?;
    let addr = engine(&state).await?.addr();
    send::send(addr, method.as_deref().unwrap_or("GET"), &path, &headers, body).await
}

/// `GET /_fn/schedules`: schedules and keep-warm entries with their state.
#[tauri::command]
pub async fn schedules(state: State<'_, AppState>) -> Result<fastfn::scheduler::SchedulesSnapshot> {
    Ok(engine(&state).await?.schedules())
}

/// What `run_schedule` (and `POST /_fn/schedules/run`) answers.
#[derive(Debug, Serialize)]
pub struct RunNow {
    pub key: String,
    pub status: u16,
    pub error: String,
    pub ok: bool,
}

/// "Run now": one run of a schedule, off its timetable.
#[tauri::command]
pub async fn run_schedule(state: State<'_, AppState>, key: String) -> Result<RunNow> {
    let (status, error) = engine(&state)
        .await?
        .run_schedule(&key)
        .await
        .map_err(|e| UiError::new("schedule.run_refused", e.to_string()))?;
    Ok(RunNow {
        ok: status != 0 && status < 400,
        key,
        status,
        error,
    })
}

/// What `kill_daemon` (and `POST /_fn/daemons/kill`) answers.
#[derive(Debug, Serialize)]
pub struct Killed {
    pub ok: bool,
    pub runtime: RuntimeKind,
    pub index: usize,
    pub pid: u32,
}

#[tauri::command]
pub async fn kill_daemon(state: State<'_, AppState>, runtime: String, index: Option<usize>) -> Result<Killed> {
    let engine = engine(&state).await?;
    let index = index.unwrap_or(1);
    let rt = RuntimeKind::parse(&runtime);
    let daemon = engine
        .daemons()
        .iter()
        .find(|d| Some(d.runtime) == rt && d.index == index)
        .ok_or_else(|| UiError::new("daemon.not_found", format!("no {runtime} daemon {index}")))?;
    let pid = daemon.pid();
    Ok(Killed {
        ok: daemon.kill(),
        runtime: daemon.runtime,
        index,
        pid,
    })
}

#[tauri::command]
pub async fn open_project(app: AppHandle, state: State<'_, AppState>, path: String) -> Result<ProjectInfo> {
    state.open(&app, PathBuf::from(path)).await
}

/// The folder dialog; `null` when cancelled.
#[tauri::command]
pub async fn pick_project(app: AppHandle, state: State<'_, AppState>) -> Result<Option<ProjectInfo>> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    app.dialog()
        .file()
        .set_title("Open a FastFN project")
        .pick_folder(move |folder| {
            let _ = tx.send(folder);
        });
    let Some(folder) = rx.await.ok().flatten() else {
        return Ok(None);
    };
    let path = folder
        .into_path()
        .map_err(|e| UiError::new("project.bad_path", e.to_string()))?;
    state.open(&app, path).await.map(Some)
}

#[tauri::command]
pub async fn recent_projects(state: State<'_, AppState>) -> Result<Vec<String>> {
    Ok(state.recents.list())
}

/// `{path, url, port}` (`null`s and an `error` when the engine failed to start); `null` when
/// no project is open.
#[tauri::command]
pub async fn current_project(state: State<'_, AppState>) -> Result<Option<ProjectInfo>> {
    Ok(state.current.lock().await.as_ref().map(|o| o.info()))
}

#[tauri::command]
pub async fn open_file(app: AppHandle, state: State<'_, AppState>, path: String) -> Result<String> {
    let root = engine(&state).await?.settings().functions_root.clone();
    let file = project::file_under(&root, &path)?;
    app.opener()
        .open_path(file.display().to_string(), None::<&str>)
        .map_err(|e| UiError::new("file.open_failed", e.to_string()))?;
    Ok(file.display().to_string())
}

/// "Export for Kubernetes": what `POST /_fn/export/k8s` does, for the project being served.
#[tauri::command]
pub async fn export_k8s(
    state: State<'_, AppState>,
    out: String,
    name: Option<String>,
    image: Option<String>,
    force: Option<bool>,
) -> Result<fastfn::k8s::K8sExport> {
    let settings = engine(&state).await?.settings().clone();
    let blank = |s: Option<String>| s.filter(|s| !s.trim().is_empty());
    let (name, image) = (blank(name), blank(image));
    // Reads and copies the project: off the async workers.
    tokio::task::spawn_blocking(move || {
        fastfn::k8s::export_served(&settings, PathBuf::from(out), name, image, force.unwrap_or(false))
    })
    .await
    .map_err(|_| UiError::new("export.io", "the export stopped"))?
    .map_err(|e| UiError::new(e.code(), e.to_string()))
}
