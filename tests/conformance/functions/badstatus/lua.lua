return function()
  return { status = 42 }
end
