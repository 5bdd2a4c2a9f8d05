package main

func handler(event map[string]interface{}) map[string]interface{} {
	query, _ := event["query"].(map[string]interface{})
	return map[string]interface{}{"status": 200, "body": map[string]interface{}{
		"method": event["method"], "name": query["name"], "text": event["body"],
	}}
}
