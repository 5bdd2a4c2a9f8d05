return function()
  return { statusCode = 202, body = { ok = true } }
end
