// The files that start servers run first, the unit and property files last: a run then ends with quick files on
// a quiet machine, and its workers exit within the half second jest gives them (see jest.config.js).
const DefaultSequencer = require("@jest/test-sequencer").default;

const startsServers = (test) => /[\\/]test[\\/](integration|e2e)[\\/]/.test(test.path);

class ServersFirstSequencer extends DefaultSequencer {
  sort(tests) {
    const ordered = super.sort(tests);
    return [...ordered.filter(startsServers), ...ordered.filter((test) => !startsServers(test))];
  }
}

module.exports = ServersFirstSequencer;
