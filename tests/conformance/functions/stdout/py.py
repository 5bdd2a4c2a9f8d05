def handler(event):
    print("logged")
    return "ok"
