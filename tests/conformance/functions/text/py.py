def handler(event):
    return "hello"
