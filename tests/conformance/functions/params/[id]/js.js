exports.handler = (event) => ({ id: event.params.id });
