// The words of the shared time slider, identify, history timeline and compare view (time.js,
// identify.js, history.js, compare.js), in Chinese and English. The modules take their text
// from a label function `t(key, vars)` their host hands them (`opts.t`): /map, which is a
// Chinese page, uses the default `zh`; the desktop app passes its own `t` (desktop/ui/src/i18n.js
// registers this table, so its language switch covers these words too) and asks each module to
// `relabel()` on its `lang` event. `{name}` in a text is replaced by `vars.name`.

export const TEXT = {
  // time.js
  sk_now: ['现在', 'Now'],
  sk_back: ['后退一步', 'Step back'],
  sk_play: ['播放', 'Play'],
  sk_pause: ['暂停', 'Pause'],
  sk_forward: ['前进一步', 'Step forward'],
  sk_time: ['时间', 'Time'],
  sk_to_now: ['回到现在', 'Back to now'],
  sk_step: ['步长', 'Step'],
  sk_range: ['范围', 'Range'],
  sk_loop: ['循环', 'Loop'],
  sk_step_auto: ['自动', 'Auto'],
  sk_step_60: ['1 分钟', '1 minute'],
  sk_step_3600: ['1 小时', '1 hour'],
  sk_step_86400: ['1 天', '1 day'],
  sk_step_604800: ['7 天', '7 days'],
  sk_step_2592000: ['30 天', '30 days'],
  // identify.js (the feature's bookkeeping fields; the layer's own fields are data)
  sk_f_version: ['版本', 'Version'],
  sk_f_tx_time: ['事务时间', 'Transaction time'],
  sk_f_valid_from: ['有效起', 'Valid from'],
  sk_f_valid_to: ['有效止', 'Valid to'],
  sk_f_code: ['编码', 'Code'],
  sk_reading: ['读取中…', 'Reading…'],
  sk_missing: ['该时刻无此要素（{e}）', 'No such feature at this instant ({e})'],
  sk_as_of: ['状态时刻：', 'As of: '],
  sk_history_link: ['历史时间线 ›', 'History timeline ›'],
  // history.js
  sk_history: ['历史', 'History'],
  sk_close: ['关闭', 'Close'],
  sk_loading: ['加载中…', 'Loading…'],
  sk_history_failed: ['历史加载失败：{e}', 'Cannot load the history: {e}'],
  sk_versions: ['共 {n} 个版本', '{n} versions'],
  sk_versions_1: ['共 1 个版本', '1 version'],
  sk_op_insert: ['新增', 'Added'],
  sk_op_update: ['修改', 'Changed'],
  sk_op_delete: ['删除', 'Deleted'],
  // compare.js
  sk_at_a: ['时刻 A', 'Instant A'],
  sk_at_b: ['时刻 B', 'Instant B'],
  sk_b_empty: ['空：现在', 'Empty: now'],
  sk_mode: ['方式', 'Mode'],
  sk_side: ['并排', 'Side by side'],
  sk_swipe: ['卷帘', 'Swipe'],
  sk_compare: ['对比', 'Compare'],
  sk_swipe_pos: ['卷帘位置', 'Swipe position'],
  sk_compare_hint: [
    '选择两个时刻后点“对比”，列出其间新增、删除与修改的要素。',
    'Choose two instants and press “Compare” to list the features added, removed and changed between them.',
  ],
  sk_kind_created: ['新增', 'Added'],
  sk_kind_deleted: ['删除', 'Removed'],
  sk_kind_modified: ['修改', 'Changed'],
  sk_counts: ['新增 {created} · 删除 {deleted} · 修改 {modified}', '{created} added · {deleted} removed · {modified} changed'],
  sk_more: ['更多…', 'More…'],
  sk_read_failed: ['读取失败：{e}', 'Cannot read: {e}'],
  sk_pick_a: ['请选择时刻 A', 'Choose instant A'],
  sk_comparing: ['对比中…', 'Comparing…'],
  sk_changed_n: ['{n} 个要素有变化', '{n} features changed'],
  sk_no_changes: ['两时刻之间没有变化', 'No changes between the two instants'],
  // analysis.js, replay.js (OGC API – Processes)
  sk_analysis: ['分析', 'Analysis'],
  sk_process: ['分析方法', 'Process'],
  sk_run: ['运行', 'Run'],
  sk_cancel: ['取消', 'Cancel'],
  sk_more_inputs: ['更多选项', 'More options'],
  sk_choose: ['（请选择）', '(choose)'],
  sk_none: ['（无）', '(none)'],
  sk_sign_in_first: ['请先登录后再运行分析', 'Sign in to run an analysis'],
  sk_no_numeric: ['该图层没有数值字段', 'The layer has no numeric field'],
  sk_job_accepted: ['排队中', 'Waiting'],
  sk_job_running: ['运行中', 'Running'],
  sk_job_successful: ['完成', 'Done'],
  sk_job_failed: ['失败', 'Failed'],
  sk_job_dismissed: ['已取消', 'Cancelled'],
  sk_job_failure: ['失败：{e}', 'Failed: {e}'],
  sk_failed_input: ['{e}（输入项 {w}）', '{e} (input {w})'],
  sk_jobs: ['历史任务', 'Past jobs'],
  sk_no_jobs: ['暂无任务', 'No jobs yet'],
  sk_show_result: ['显示结果', 'Show the result'],
  sk_result_layer: ['{process}：{n} 个要素', '{process}: {n} features'],
  sk_remove: ['移除', 'Remove'],
  sk_legend: ['图例', 'Legend'],
  sk_noise: ['噪声', 'Noise'],
  sk_cluster_n: ['簇 {n}', 'Cluster {n}'],
  sk_more_clusters: ['另有 {n} 个簇', '{n} more clusters'],
  sk_bin_3: ['热点 99% 置信', 'Hot spot, 99% confidence'],
  sk_bin_2: ['热点 95% 置信', 'Hot spot, 95% confidence'],
  sk_bin_1: ['热点 90% 置信', 'Hot spot, 90% confidence'],
  sk_bin_0: ['不显著', 'Not significant'],
  sk_bin_m1: ['冷点 90% 置信', 'Cold spot, 90% confidence'],
  sk_bin_m2: ['冷点 95% 置信', 'Cold spot, 95% confidence'],
  sk_bin_m3: ['冷点 99% 置信', 'Cold spot, 99% confidence'],
  sk_lisa_HH: ['高-高聚集', 'High-high cluster'],
  sk_lisa_LL: ['低-低聚集', 'Low-low cluster'],
  sk_lisa_HL: ['高-低异常', 'High-low outlier'],
  sk_lisa_LH: ['低-高异常', 'Low-high outlier'],
  sk_lisa_NS: ['不显著', 'Not significant'],
  sk_features: ['要素', 'Features'],
  sk_run_failed: ['运行失败：{e}', 'Cannot run: {e}'],
  sk_replay: ['历史回放', 'Replay'],
  sk_replay_step: ['第 {i}/{n} 步 · {at} · {live} 个要素', 'Step {i}/{n} · {at} · {live} features'],
  sk_replay_changes: ['新增 {added} · 修改 {changed} · 消失 {removed}', '{added} added · {changed} changed · {removed} gone'],
  sk_replay_new: ['本步新增/修改', 'Added or changed in this step'],
  sk_replay_kept: ['其余要素', 'Other features'],
};

/** The label function of `lang` (`zh` or `en`): `(key, vars) → text`; an unknown key shows itself. */
export function labels(lang = 'zh') {
  const i = lang === 'en' ? 1 : 0;
  return (key, vars) => {
    const pair = TEXT[key];
    let s = pair ? pair[i] : key;
    if (vars) s = s.replace(/\{(\w+)\}/g, (m, k) => (k in vars ? String(vars[k]) : m));
    return s;
  };
}

/** The default: Chinese, as /map shows it. */
export const zh = labels('zh');
