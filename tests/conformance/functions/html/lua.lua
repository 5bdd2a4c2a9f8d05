return function()
  return "<h1>hi</h1>"
end
