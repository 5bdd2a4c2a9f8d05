return function()
  error("boom")
end
