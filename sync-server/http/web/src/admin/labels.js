// The admin console's words, Chinese first (the page is zh-CN) with English for the switch.
// `{name}` in a text is replaced by `vars.name`; an unknown key shows itself.

const TEXT = {
  title: ['时空 管理控制台', 'shikong admin console'],
  username: ['用户名', 'User name'],
  password: ['密码', 'Password'],
  signin: ['登录', 'Sign in'],
  signout: ['退出', 'Sign out'],
  signedInAs: ['已登录：', 'Signed in: '],
  pleaseSignIn: ['请使用管理员账号登录。', 'Sign in with an administrator account.'],
  needAdmin: ['需要管理员权限', 'Administrator permission required'],
  needAdminText: ['当前账号不是管理员，无法查看或修改管理数据。', 'This account is not an administrator: nothing here can be seen or changed.'],
  badLogin: ['用户名或密码错误', 'Wrong user name or password'],
  loginFailed: ['登录失败（{status}）', 'Sign-in failed ({status})'],
  loading: ['加载中…', 'Loading…'],
  refresh: ['刷新', 'Refresh'],
  actions: ['操作', 'Actions'],
  none: ['无', 'None'],
  saved: ['已保存', 'Saved'],
  failed: ['失败：{msg}', 'Failed: {msg}'],
  confirmDelete: ['确定删除 {what}？', 'Delete {what}?'],
  delete: ['删除', 'Delete'],
  created: ['创建时间', 'Created'],
  // tabs
  tab_users: ['用户与审批', 'Users & approvals'],
  tab_layers: ['图层与权限', 'Layers & permissions'],
  tab_devices: ['设备与注册', 'Devices & enrolment'],
  tab_services: ['服务与健康', 'Services & health'],
  tab_keys: ['密钥与配额', 'Keys & quotas'],
  tab_harvest: ['目录采集', 'Catalogue harvesting'],
  tab_audit: ['审计与统计', 'Audit & statistics'],
  tab_system: ['系统资源', 'System resources'],
  // harvest
  harvests: ['采集源', 'Harvest sources'],
  addHarvest: ['添加采集源', 'Add a harvest source'],
  noHarvests: ['还没有采集源。', 'No harvest sources yet.'],
  records: ['记录数', 'Records'],
  everyMinutes: ['采集间隔（分钟，可选）', 'Every (minutes, optional)'],
  everyColumn: ['采集间隔（分钟）', 'Every (minutes)'],
  lastRun: ['最近一次', 'Latest run'],
  runNow: ['立即采集', 'Harvest now'],
  never: ['未采集', 'Never'],
  running: ['采集中（{t} 开始）', 'Running (since {t})'],
  runCounts: ['新增 {a} · 更新 {u} · 删除 {r} · 未变 {n}', 'added {a} · updated {u} · removed {r} · unchanged {n}'],
  harvesting: ['正在采集 {what}…', 'Harvesting {what}…'],
  alreadyRunning: ['{what} 正在采集中', '{what} is being harvested already'],
  deleted: ['已删除 {what}', 'Deleted {what}'],
  // users
  displayName: ['姓名', 'Name'],
  role: ['角色', 'Role'],
  status: ['状态', 'Status'],
  groups: ['分组', 'Groups'],
  allStatuses: ['全部状态', 'All statuses'],
  role_admin: ['管理员', 'Administrator'],
  role_office: ['业务人员', 'Office staff'],
  role_inspector: ['巡查员', 'Inspector'],
  role_citizen: ['市民', 'Citizen'],
  st_active: ['正常', 'Active'],
  st_pending: ['待审核', 'Pending'],
  st_rejected: ['已拒绝', 'Rejected'],
  st_disabled: ['已停用', 'Disabled'],
  approve: ['批准', 'Approve'],
  reject: ['拒绝', 'Reject'],
  disable: ['停用', 'Disable'],
  enable: ['启用', 'Enable'],
  rejectReason: ['拒绝理由（可选）', 'Reason for rejecting (optional)'],
  addUser: ['添加用户', 'Add user'],
  add: ['添加', 'Add'],
  userChanged: ['{user}：{status}', '{user}: {status}'],
  // layers
  layers: ['图层', 'Layers'],
  layerId: ['图层标识', 'Layer id'],
  layerTitle: ['名称', 'Title'],
  schema: ['字段（可查询属性）', 'Fields (queryables)'],
  field: ['字段', 'Field'],
  type: ['类型', 'Type'],
  rules: ['权限规则', 'Permission rules'],
  subject: ['对象', 'Subject'],
  grants: ['权限', 'Grants'],
  subjectHint: ['如 role:citizen、group:排水队、authenticated', 'e.g. role:citizen, group:drainage, authenticated'],
  grantsHint: ['如 read,edit 或 none', 'e.g. read,edit or none'],
  setRule: ['设置规则', 'Set rule'],
  pickLayer: ['选择左侧的图层查看字段与权限。', 'Pick a layer to see its fields and rules.'],
  noRules: ['没有图层规则（按默认权限）。', 'No layer rules (the defaults apply).'],
  // devices
  devices: ['设备', 'Devices'],
  device: ['设备标识', 'Device id'],
  deviceName: ['设备名称', 'Device name'],
  platform: ['平台', 'Platform'],
  user: ['用户', 'User'],
  revoked: ['已吊销', 'Revoked'],
  yes: ['是', 'Yes'],
  no: ['否', 'No'],
  enrolment: ['设备注册码', 'Enrolment code'],
  enrolFor: ['为用户（留空为自己）', 'For user (empty: yourself)'],
  createCode: ['生成注册码', 'Create code'],
  code: ['注册码', 'Code'],
  expires: ['有效期至', 'Expires'],
  scanHint: ['用移动端扫描二维码完成注册（一次有效）。', 'Scan the QR code with the mobile app (valid once).'],
  // services
  services: ['已注册服务', 'Registered services'],
  registerService: ['注册服务', 'Register a service'],
  url: ['服务地址', 'Service URL'],
  proxyUrl: ['平台代理地址', 'Platform proxy URL'],
  health: ['健康状态', 'Health'],
  latency: ['延迟', 'Latency'],
  lastError: ['最近错误', 'Last error'],
  checkedAt: ['检查时间', 'Checked'],
  h_up: ['在线', 'Up'],
  h_down: ['下线', 'Down'],
  h_unknown: ['未检查', 'Not checked'],
  downSince: ['自 {t} 起下线', 'down since {t}'],
  register: ['注册', 'Register'],
  noServices: ['尚未注册服务。', 'No service registered yet.'],
  autoRefresh: ['每 {s} 秒自动刷新', 'Refreshed every {s} s'],
  // keys
  keys: ['API 密钥', 'API keys'],
  createKey: ['创建密钥', 'Create a key'],
  keyName: ['名称', 'Name'],
  quota: ['每日配额（次）', 'Daily quota (requests)'],
  usedToday: ['今日已用', 'Used today'],
  fence: ['服务围栏（WKT 多边形，可选）', 'Fence (WKT polygon, optional)'],
  hours: ['时段（如 08:00-20:00，可选）', 'Hours (e.g. 08:00-20:00, optional)'],
  rate: ['每秒限速（次，可选）', 'Rate limit (requests a second, optional)'],
  rateColumn: ['每秒限速', 'Per second'],
  keyServices: ['可用服务', 'Services'],
  revoke: ['吊销', 'Revoke'],
  secretOnce: ['新密钥（只显示这一次，请妥善保存）：', 'New key (shown this once only, keep it safe):'],
  noKeys: ['尚无密钥。', 'No keys yet.'],
  // audit and statistics
  audit: ['审计日志', 'Audit log'],
  time: ['时间', 'Time'],
  action: ['动作', 'Action'],
  outcome: ['结果', 'Outcome'],
  actor: ['操作者', 'Actor'],
  target: ['对象', 'Target'],
  client: ['客户端', 'Client'],
  detail: ['详情', 'Detail'],
  filterUser: ['按用户筛选', 'Filter by user'],
  filterAction: ['按动作筛选（如 login,approve_user）', 'Filter by action (e.g. login,approve_user)'],
  allOutcomes: ['全部结果', 'All outcomes'],
  search: ['查询', 'Search'],
  firstPage: ['第一页', 'First page'],
  nextPage: ['下一页', 'Next page'],
  usage: ['使用统计', 'Usage statistics'],
  route: ['接口', 'Route'],
  requests: ['请求数', 'Requests'],
  perSecond: ['次/秒', 'per second'],
  keyUsage: ['密钥用量（今日）', 'Key usage (today)'],
  // system
  system: ['系统资源', 'System resources'],
  diskFree: ['数据目录剩余空间', 'Data folder free space'],
  memory: ['服务进程内存', 'Server process memory'],
  machineMemory: ['主机可用内存', 'Machine memory available'],
  requestRate: ['请求速率', 'Request rate'],
  errorRate: ['5xx 错误速率', '5xx error rate'],
  uptime: ['运行时长', 'Uptime'],
  alerts: ['告警', 'Alerts'],
  noAlerts: ['无告警', 'No alerts'],
  thresholds: ['告警阈值', 'Alert thresholds'],
  thDisk: ['剩余空间低于（%）', 'Free space below (%)'],
  thMemory: ['内存超过（MiB）', 'Memory above (MiB)'],
  thRequests: ['请求速率超过（次/秒）', 'Request rate above (per second)'],
  thEmpty: ['留空表示不监控', 'Leave empty to not watch'],
  save: ['保存', 'Save'],
  since: ['起始', 'Since'],
};

let lang = localStorage.getItem('shikong.lang') === 'en' ? 'en' : 'zh';

export function getLang() {
  return lang;
}

export function setLang(l) {
  lang = l === 'en' ? 'en' : 'zh';
  localStorage.setItem('shikong.lang', lang);
  document.documentElement.lang = lang === 'en' ? 'en' : 'zh-CN';
}

/** The text of `key` in the current language. */
export function t(key, vars) {
  const pair = TEXT[key];
  let s = pair ? pair[lang === 'en' ? 1 : 0] : key;
  if (vars) s = s.replace(/\{(\w+)\}/g, (m, k) => (k in vars ? String(vars[k]) : m));
  return s;
}

/** Says the page's static words (`data-i18n`, `data-i18n-placeholder`) again. */
export function relabelStatic(root = document) {
  for (const e of root.querySelectorAll('[data-i18n]')) e.textContent = t(e.dataset.i18n);
  for (const e of root.querySelectorAll('[data-i18n-placeholder]')) e.placeholder = t(e.dataset.i18nPlaceholder);
}
