package main

func handler(event map[string]interface{}) map[string]interface{} {
	panic("boom")
}
