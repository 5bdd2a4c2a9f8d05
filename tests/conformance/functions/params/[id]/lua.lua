return function(event)
  return { id = event.params.id }
end
