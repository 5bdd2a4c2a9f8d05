def handler(event):
    return {"a": 1, "b": [1, 2]}
