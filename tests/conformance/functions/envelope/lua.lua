return function()
  return { status = 201, headers = { ["X-Kind"] = "env" }, body = "made" }
end
