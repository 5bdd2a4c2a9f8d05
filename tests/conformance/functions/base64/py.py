def handler(event):
    return {"status": 200, "headers": {"Content-Type": "application/octet-stream"},
            "is_base64": True, "body_base64": "AAEC/w=="}
