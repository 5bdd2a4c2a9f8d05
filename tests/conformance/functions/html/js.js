exports.handler = () => '<h1>hi</h1>';
