package main

func handler(event map[string]interface{}) map[string]interface{} {
	env, _ := event["env"].(map[string]interface{})
	return map[string]interface{}{"status": 200, "headers": map[string]interface{}{"Content-Type": "text/plain; charset=utf-8"}, "body": env["GREETING"]}
}
