def handler(event):
    return {"statusCode": 202, "body": {"ok": True}}
