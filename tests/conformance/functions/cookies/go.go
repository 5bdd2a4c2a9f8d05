package main

func handler(event map[string]interface{}) map[string]interface{} {
	return map[string]interface{}{"status": 200, "headers": map[string]interface{}{"Set-Cookie": []string{"a=1", "b=2"}}, "body": "c"}
}
