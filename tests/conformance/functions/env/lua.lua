return function(event)
  return event.env.GREETING
end
