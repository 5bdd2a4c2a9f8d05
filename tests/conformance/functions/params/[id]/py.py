def handler(event):
    return {"id": event["params"]["id"]}
