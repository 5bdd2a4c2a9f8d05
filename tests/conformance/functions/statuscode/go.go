package main

func handler(event map[string]interface{}) map[string]interface{} {
	return map[string]interface{}{"statusCode": 202, "body": map[string]interface{}{"ok": true}}
}
