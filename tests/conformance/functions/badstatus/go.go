package main

func handler(event map[string]interface{}) map[string]interface{} {
	return map[string]interface{}{"status": 42}
}
