def handler(event):
    return {"status": 42}
