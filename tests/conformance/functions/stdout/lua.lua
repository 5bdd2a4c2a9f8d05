return function()
  print("logged")
  return "ok"
end
