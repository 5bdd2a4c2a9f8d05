def handler(event):
    return event["env"]["GREETING"]
