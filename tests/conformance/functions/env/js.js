exports.handler = (event) => event.env.GREETING;
