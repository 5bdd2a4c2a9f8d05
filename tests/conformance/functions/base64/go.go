package main

func handler(event map[string]interface{}) map[string]interface{} {
	return map[string]interface{}{
		"status":      200,
		"headers":     map[string]interface{}{"Content-Type": "application/octet-stream"},
		"is_base64":   true,
		"body_base64": "AAEC/w==",
	}
}
