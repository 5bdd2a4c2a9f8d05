exports.handler = () => {
  console.error('warned');
  return 'ok';
};
