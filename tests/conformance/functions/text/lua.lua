return function()
  return "hello"
end
