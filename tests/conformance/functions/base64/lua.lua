return function()
  return { status = 200, headers = { ["Content-Type"] = "application/octet-stream" },
    is_base64 = true, body_base64 = "AAEC/w==" }
end
