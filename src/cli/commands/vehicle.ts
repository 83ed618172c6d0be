/** `fleet vehicle <vehicleId>`: the vehicle, its calendar and its status now. */
import { need, print, type Command } from '../context.ts';

export const vehicleCommand: Command = {
  name: 'vehicle',
  async run({ inventory, arg }) {
    print(await inventory.getVehicleState(need('vehicleId', arg)));
  },
};
