use serde_json::{json, Value};

pub fn handler(event: Value) -> Value {
    json!({"status": 200, "body": {"id": event["params"]["id"]}})
}
