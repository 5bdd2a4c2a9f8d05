exports.handler = (event) => ({ method: event.method, name: event.query.name, text: event.body });
