import { builder } from './builder.ts';
import './modules/common/types.ts';
import './modules/tenants/types.ts';
import './modules/catalog/types.ts';
import './modules/licenses/types.ts';
import './modules/activation/types.ts';
import './modules/signing/types.ts';
import './modules/leases/types.ts';
import './modules/metering/types.ts';
import './modules/audit/types.ts';
import './modules/compliance/types.ts';
import './modules/offline/types.ts';
import './modules/system/types.ts';
import './modules/webhooks/types.ts';

export const schema = builder.toSchema({ sortSchema: true });
