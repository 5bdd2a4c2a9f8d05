use serde_json::{json, Value};

pub fn handler(_event: Value) -> Value {
    json!({"status": 201, "headers": {"X-Kind": "env"}, "body": "made"})
}
