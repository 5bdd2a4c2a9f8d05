exports.handler = () => ({ status: 201, headers: { 'X-Kind': 'env' }, body: 'made' });
