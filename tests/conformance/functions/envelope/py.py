def handler(event):
    return {"status": 201, "headers": {"X-Kind": "env"}, "body": "made"}
