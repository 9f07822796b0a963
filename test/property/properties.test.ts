import fc from "fast-check";
import { testParameters } from "./fuzz-parameters";
import { PROPERTY_GROUPS } from "./property-groups";

for (const group of PROPERTY_GROUPS) {
  describe(group.subject, () => {
    for (const named of group.properties) {
      test(named.name, async () => {
        await fc.assert(named.property, testParameters(named));
      });
    }
  });
}
