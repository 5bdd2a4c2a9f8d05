def handler(event):
    raise ValueError("boom")
