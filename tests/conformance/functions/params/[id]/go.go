package main

func handler(event map[string]interface{}) map[string]interface{} {
	params, _ := event["params"].(map[string]interface{})
	return map[string]interface{}{"status": 200, "body": map[string]interface{}{"id": params["id"]}}
}
