import { TaskCancelledError, TaskFailure } from '../task-failure';
import { type AnalysisProgress, analyseDocument } from './document-analysis';

const report = `Quarterly report. Revenue grew in every region this quarter.

The revenue growth came from new subscriptions! Subscriptions in Europe doubled, and subscriptions in Asia grew by half.
Costs stayed flat. Is the growth durable? The board thinks subscription revenue will keep growing next year.`;

describe('analyseDocument', () => {
  it('counts words, sentences and paragraphs, weighs key terms and picks summary sentences in order', async () => {
    const result = await analyseDocument(report, { summarySentences: 2 });
    expect(result).toMatchObject({ paragraphs: 2, sentences: 7 });
    expect(result.words).toBe(report.match(/[A-Za-z]+/g)?.length);
    expect(result.unique_words).toBeLessThan(result.words);
    expect(result.top_terms[0]).toMatchObject({ weight: 1 });
    const terms = result.top_terms.map((t) => t.term);
    expect(terms.slice(0, 3)).toEqual(expect.arrayContaining(['revenue', 'subscriptions']));
    expect(terms).not.toContain('the');
    const weights = result.top_terms.map((t) => t.weight);
    expect(weights).toEqual([...weights].sort((a, b) => b - a));
    expect(result.summary).toHaveLength(2);
    const positions = result.summary.map((s) => report.replace(/\s+/g, ' ').indexOf(s));
    expect(positions.every((p) => p >= 0)).toBe(true);
    expect(positions).toEqual([...positions].sort((a, b) => a - b));
    expect(result.reading_time_s).toBeGreaterThan(0);
  });

  it('reports every stage in order with rising progress', async () => {
    const seen: AnalysisProgress[] = [];
    await analyseDocument(report, { checkpoint: async (p) => void seen.push(p) });
    expect(seen.map((p) => p.stage)).toEqual(['normalise', 'tokenise', 'statistics', 'key_terms', 'summary']);
    const progress = seen.map((p) => p.progress);
    expect(progress).toEqual([...progress].sort((a, b) => a - b));
    expect(progress.every((p) => p > 0 && p < 100)).toBe(true);
  });

  it('checkpoints between chunks of a large document and stops where the checkpoint throws', async () => {
    const big = `${'Redis streams keep events for resume. Workers publish progress to users. '.repeat(4_000)}`;
    const stages: string[] = [];
    await expect(
      analyseDocument(big, {
        chunkChars: 10_000,
        checkpoint: async (p) => {
          stages.push(p.stage);
          if (stages.filter((s) => s === 'tokenise').length === 3) throw new TaskCancelledError('cancelled');
        },
      }),
    ).rejects.toBeInstanceOf(TaskCancelledError);
    expect(stages).toEqual(['normalise', 'tokenise', 'tokenise', 'tokenise']);
  });

  it('refuses a document over the maximum size and an empty one, with codes', async () => {
    await expect(analyseDocument('x'.repeat(101), { maxBytes: 100 })).rejects.toMatchObject({
      name: 'TaskFailure',
      code: 'document_too_large',
    });
    // Bytes, not characters: four 3-byte characters are 12 bytes.
    await expect(analyseDocument('€€€€', { maxBytes: 10 })).rejects.toBeInstanceOf(TaskFailure);
    await expect(analyseDocument(' \n\t ')).rejects.toMatchObject({ code: 'empty_document' });
  });

  it('handles text in other scripts and without sentence punctuation', async () => {
    const result = await analyseDocument('Grüße aus Köln\nПривет мир\n東京 大阪');
    expect(result.sentences).toBe(3);
    expect(result.words).toBe(7);
    expect(result.top_terms.map((t) => t.term)).toContain('köln');
  });
});
