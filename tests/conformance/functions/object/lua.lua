return function()
  return { a = 1, b = { 1, 2 } }
end
